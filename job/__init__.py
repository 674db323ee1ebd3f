"""detection-job: scheduled Kibana-style detection rules over Elasticsearch."""

__version__ = "0.1.0"
