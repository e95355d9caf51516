{ "targets": [{ "target_name": "agent-call", "sources": ["agent-call.c"], "defines": ["NAPI_VERSION=8"] }] }
