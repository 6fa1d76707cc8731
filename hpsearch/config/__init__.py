"""Study definitions: frozen records, one table of field domains, loading ``studies/*.toml``.

A *definition* is what makes two runs the same study: the data, the K-fold split, the fixed
training settings, the search space, the metric, the sampler and the seed. It is stored on the
study as ``asdict()`` so that ``report``, ``final-test`` and further workers rebuild it exactly.
A *run* adds what may differ between invocations of one study: storage, trial budget, device.

The built-in defaults here and ``studies/default.toml`` describe the same definition; a test
keeps them from drifting apart.
"""

from hpsearch.config.domains import DOMAINS, Domain, validate
from hpsearch.config.load import definition_from_dict, load_definition, stored_definition, with_overrides
from hpsearch.config.records import (
    BUNDLED,
    COLUMN_LISTS,
    DATASETS,
    DEFAULT_SPACE,
    FIGURES,
    INT_FIELDS,
    LR_SCHEDULES,
    METRIC_NAMES,
    METRICS,
    OFFICIAL_SPLIT,
    OPTIMIZERS,
    PICKLE_SUFFIXES,
    PRUNERS,
    SAMPLERS,
    SHIPPED,
    TABLE_SUFFIXES,
    CVConfig,
    DataConfig,
    DatasetName,
    Definition,
    Device,
    LrSchedule,
    Metric,
    Optimizer,
    ParamSpec,
    Pruner,
    PrunerConfig,
    RunConfig,
    Sampler,
    SamplerConfig,
    Shipped,
    TrainConfig,
)
from hpsearch.config.seeds import Streams, derive, model_streams

__all__ = [
    "BUNDLED",
    "COLUMN_LISTS",
    "DATASETS",
    "DEFAULT_SPACE",
    "DOMAINS",
    "FIGURES",
    "INT_FIELDS",
    "LR_SCHEDULES",
    "METRICS",
    "METRIC_NAMES",
    "OFFICIAL_SPLIT",
    "OPTIMIZERS",
    "PICKLE_SUFFIXES",
    "PRUNERS",
    "SAMPLERS",
    "SHIPPED",
    "TABLE_SUFFIXES",
    "CVConfig",
    "DataConfig",
    "DatasetName",
    "Definition",
    "Device",
    "Domain",
    "LrSchedule",
    "Metric",
    "Optimizer",
    "ParamSpec",
    "Pruner",
    "PrunerConfig",
    "RunConfig",
    "Sampler",
    "SamplerConfig",
    "Shipped",
    "Streams",
    "TrainConfig",
    "definition_from_dict",
    "derive",
    "load_definition",
    "model_streams",
    "stored_definition",
    "validate",
    "with_overrides",
]
