// The plugin's one request to the node agent, made synchronously in C: connect to the agent's unix socket,
// send the request line, end the sending side, read the answer line. Node's own sockets (net) cost the
// plugin about 4 ms of lazy start-up on every ADD and DEL (cni-plugin/agent-client.ts says where); this
// costs tens of microseconds. Built by `npm run build` with node-gyp against the local Node headers; the
// agent puts it beside its socket, where the plugin loads it from (cni-plugin/agent-call.ts).
//
// call(path, request, timeoutMs, maxBytes): string. Throws an Error whose .errno is the errno (ENOENT,
// ECONNREFUSED, ENOTSOCK, ...), ETIMEDOUT when the whole exchange outlasts timeoutMs, or EMSGSIZE when the
// answer grows past maxBytes.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

// The errno goes to JS as a number (.errno), which names it (util.getSystemErrorName): glibc's own
// strerrorname_np is 2.32's, newer than some nodes' the plugin runs on.
static void throw_code(napi_env env, int err, const char *what) {
  char text[200];
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  napi_value message, number, error;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_int32(env, err, &number);
  napi_set_named_property(env, error, "errno", number);
  napi_throw(env, error);
}

/** Waits until fd is ready for `events` or the deadline passes; 0, or the errno. */
static int wait_for(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) return ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
    if (n > 0) return 0;
    if (n < 0 && errno != EINTR) return errno;
  }
}

static napi_value call(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  size_t path_len = 0, request_len = 0;
  int64_t timeout = 0, max = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &path_len) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], NULL, 0, &request_len) != napi_ok ||
      napi_get_value_int64(env, argv[2], &timeout) != napi_ok || napi_get_value_int64(env, argv[3], &max) != napi_ok) {
    napi_throw_type_error(env, NULL, "call(path: string, request: string, timeoutMs: number, maxBytes: number)");
    return NULL;
  }
  if (path_len >= sizeof path) {
    throw_code(env, ENAMETOOLONG, "the agent's socket path");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len);
  char *request = malloc(request_len + 1);
  char *answer = malloc((size_t)max + 1);
  if (!request || !answer) {
    free(request);
    free(answer);
    throw_code(env, ENOMEM, "call");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[1], request, request_len + 1, &request_len);

  long long deadline = now_ms() + timeout;
  int err = 0;
  const char *what = "connect";
  size_t got = 0;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    err = errno;
    goto done;
  }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, path, path_len);
  // A unix socket connects at once, or says EAGAIN while the listener's backlog is full: then try again.
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      err = errno;
      goto done;
    }
    if (now_ms() >= deadline) {
      err = ETIMEDOUT;
      goto done;
    }
    usleep(1000);
  }
  what = "send";
  for (size_t sent = 0; sent < request_len;) {
    ssize_t n = send(fd, request + sent, request_len - sent, MSG_NOSIGNAL);
    if (n >= 0) sent += (size_t)n;
    else if (errno == EAGAIN) {
      if ((err = wait_for(fd, POLLOUT, deadline))) goto done;
    } else if (errno != EINTR) {
      err = errno;
      goto done;
    }
  }
  shutdown(fd, SHUT_WR);
  what = "receive";
  for (;;) {
    ssize_t n = recv(fd, answer + got, (size_t)max + 1 - got, 0);
    if (n == 0) break;
    if (n > 0) {
      // The answer is one line: done at its end, without waiting for the agent to close its side, which
      // it does only on its next turn of the event loop, after whatever else it has to do meanwhile.
      char *end = memchr(answer + got, '\n', (size_t)n);
      got += (size_t)n;
      if (end) {
        got = (size_t)(end - answer) + 1;
        break;
      }
      if (got > (size_t)max) {
        err = EMSGSIZE;
        goto done;
      }
    } else if (errno == EAGAIN) {
      if ((err = wait_for(fd, POLLIN, deadline))) goto done;
    } else if (errno != EINTR) {
      err = errno;
      goto done;
    }
  }

done:
  if (fd >= 0) close(fd);
  free(request);
  napi_value out = NULL;
  if (err) throw_code(env, err, what);
  else napi_create_string_utf8(env, answer, got, &out);
  free(answer);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "call", NAPI_AUTO_LENGTH, call, NULL, &fn);
  napi_set_named_property(env, exports, "call", fn);
  return exports;
}
