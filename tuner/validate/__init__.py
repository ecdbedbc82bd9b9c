"""Ground truth: the operation stream of a run, replayed by a real Flink job on RocksDB.

``validate_run`` runs Flink's default, the recommended config.yaml and Flink's predefined option
sets through a Flink DataStream job (``java/ReplayJob.java``, compiled on first use against the
installed PyFlink's jars) and compares Flink's throughput and ranking with the replay's.
"""

from tuner.validate.fidelity import Fidelity, compute_fidelity, spearman
from tuner.validate.flink import FlinkInstall, compile_job, find_flink
from tuner.validate.job import FlinkRun
from tuner.validate.run import ValidationProgress, ValidationResult, validate_run

__all__ = [
    "Fidelity",
    "FlinkInstall",
    "FlinkRun",
    "ValidationProgress",
    "ValidationResult",
    "compile_job",
    "compute_fidelity",
    "find_flink",
    "spearman",
    "validate_run",
]
