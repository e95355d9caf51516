{ "targets": [{ "target_name": "netns", "sources": ["netns.c"], "defines": ["NAPI_VERSION=8"] }] }
