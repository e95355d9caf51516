{ "targets": [{ "target_name": "setns", "sources": ["setns.c"], "defines": ["NAPI_VERSION=8"] }] }
