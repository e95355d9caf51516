// setns(2) for Node, which has none: the agent enters a pod's network namespace just long enough to open a
// netlink socket there (a socket stays in the namespace it was made in). Built by `npm run build` with
// node-gyp against the local Node headers, carried inside the agent's executable as an asset.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <node_api.h>

// setns(fd: number): enters the network namespace that fd refers to; throws an Error with .errno.
static napi_value enter_netns(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "setns(fd: number)");
    return NULL;
  }
  if (setns(fd, CLONE_NEWNET) == 0) return NULL;
  int err = errno;
  char text[128];
  snprintf(text, sizeof text, "setns into the network namespace of fd %d: %s", fd, strerror(err));
  napi_value message, error, number;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_int32(env, err, &number);
  napi_set_named_property(env, error, "errno", number);
  napi_throw(env, error);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "setns", NAPI_AUTO_LENGTH, enter_netns, NULL, &fn);
  napi_set_named_property(env, exports, "setns", fn);
  return exports;
}
