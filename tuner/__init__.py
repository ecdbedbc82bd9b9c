"""tuner: a RocksDB state-backend tuning advisor for Apache Flink."""

__version__ = "0.1.0"
