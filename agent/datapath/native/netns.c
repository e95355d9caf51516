// What Node lacks for the agent's netlink datapath (agent/datapath/netlink.ts), built by `npm run build` with
// node-gyp against the local Node headers and loaded from beside the agent's executable:
// - setns(fd): the main thread enters a pod's network namespace just long enough to open a netlink socket
//   there (a socket stays in the namespace it was made in);
// - socket(): a NETLINK_ROUTE socket in the calling thread's namespace, as a file descriptor;
// - indexOf(name): a link's index in the calling thread's namespace (an ioctl, where a netlink lookup
//   costs a request and the parsing of the link's whole description);
// - request(fd, messages): sends netlink requests on that socket in one send and waits for their
//   acknowledgements on a libuv worker thread, then closes the socket. For the requests the kernel carries
//   out inside sendmsg() for tens of milliseconds (deleting a veth waits for an RCU grace period; moving a
//   link between namespaces): sent from the main thread, they would stop every other pod's ADD for that
//   long. And for a pod's side of its ADD, which the kernel carries out while the main thread does the
//   node's side;
// And, being the agent's one addon of its own:
// - replaceFile(path, data): writes data to path.tmp and renames it over path, all on one libuv worker
//   thread. Node's own writeFile and rename come back to the main thread after each of open, write, close
//   and rename, and during an ADD the main thread is busy plumbing the pod: the ADD waited about 0.4 ms
//   for its checkpoint after its pod was plumbed;
// - trim(): gives the pages the C heap has freed back to the kernel (malloc_trim). glibc keeps freed memory
//   below its heap's top for reuse; the agent's start-up leaves about 10 MB of it resident for good
//   (measured on a lab node: 95 MB RSS before, 86 MB after).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <node_api.h>

static void throw_errno(napi_env env, const char *what, int err) {
  char text[160];
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  napi_value message, error, number;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_int32(env, err, &number);
  napi_set_named_property(env, error, "errno", number);
  napi_throw(env, error);
}

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
  char what[96];
  snprintf(what, sizeof what, "setns into the network namespace of fd %d", fd);
  throw_errno(env, what, errno);
  return NULL;
}

// socket(): a NETLINK_ROUTE socket of the calling thread's namespace.
static napi_value open_socket(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    throw_errno(env, "socket(AF_NETLINK, NETLINK_ROUTE)", errno);
    return NULL;
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

// indexOf(name: string): number, the index of the link `name` in the calling thread's namespace; 0 when
// there is none.
static napi_value index_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[IF_NAMESIZE];
  size_t length = 0, full = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &full) != napi_ok) {
    napi_throw_type_error(env, NULL, "indexOf(name: string)");
    return NULL;
  }
  // A longer name, or one with a NUL in it, is no link's: names are at most IF_NAMESIZE - 1 bytes, and a
  // copy would cut either short, to another link's name.
  if (full >= IF_NAMESIZE || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &length) != napi_ok || length != full || strlen(name) != length) {
    napi_value zero;
    napi_create_uint32(env, 0, &zero);
    return zero;
  }
  unsigned index = if_nametoindex(name);
  if (index == 0 && errno != ENODEV) {
    char what[64];
    snprintf(what, sizeof what, "looking up the link %s", name);
    throw_errno(env, what, errno);
    return NULL;
  }
  napi_value out;
  napi_create_uint32(env, index, &out);
  return out;
}

// Queues `execute` for a libuv worker thread, `complete` to run on the main thread after it; returns the
// promise `complete` settles through `deferred`, or NULL, `what` thrown, when it cannot be queued.
static napi_value queue(napi_env env, const char *what, napi_async_execute_callback execute, napi_async_complete_callback complete, void *data, napi_deferred *deferred, napi_async_work *work) {
  napi_value promise, name;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, execute, complete, data, work) != napi_ok) {
    throw_errno(env, what, EAGAIN);
    return NULL;
  }
  if (napi_create_promise(env, deferred, &promise) != napi_ok || napi_queue_async_work(env, *work) != napi_ok) {
    napi_delete_async_work(env, *work);
    throw_errno(env, what, EAGAIN);
    return NULL;
  }
  return promise;
}

typedef struct {
  int fd;
  void *message; // one or more netlink messages, back to back, each asking for an acknowledgement
  size_t length;
  size_t count;
  uint32_t *seqs;
  int *results; // each message's errno (0: done), in order; UNANSWERED until its acknowledgement comes
  napi_deferred deferred;
  napi_async_work work;
} Request;

#define UNANSWERED (-1)

static void request_free(Request *r) {
  free(r->message);
  free(r->seqs);
  free(r->results);
  free(r);
}

// On a worker thread: every message in one send (the kernel carries them out in order), then read until
// each has its acknowledgement. A failure of the socket itself is every unanswered message's.
static void transact(napi_env env, void *data) {
  (void)env;
  Request *r = data;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  int failed = 0;
  // An answer the kernel dropped (its receive buffer overrun) fails the requests rather than hold this
  // thread, and whatever waits for it, for good.
  struct timeval within = {.tv_sec = 10};
  if (setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &within, sizeof within) != 0) failed = errno;
  if (!failed && sendto(r->fd, r->message, r->length, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) failed = errno;
  char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
  for (size_t answered = 0; !failed && answered < r->count;) {
    ssize_t n = recv(r->fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno != EINTR) failed = errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
      continue;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      for (size_t i = 0; i < r->count; i++) {
        if (r->seqs[i] != h->nlmsg_seq || r->results[i] != UNANSWERED) continue;
        r->results[i] = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        answered++;
        break;
      }
    }
  }
  for (size_t i = 0; i < r->count; i++)
    if (r->results[i] == UNANSWERED) r->results[i] = failed;
}

static void settle(napi_env env, napi_status status, void *data) {
  Request *r = data;
  close(r->fd);
  napi_value out, one;
  napi_create_array_with_length(env, r->count, &out);
  for (size_t i = 0; i < r->count; i++) {
    napi_create_int32(env, status == napi_ok ? r->results[i] : ECANCELED, &one);
    napi_set_element(env, out, (uint32_t)i, one);
  }
  napi_resolve_deferred(env, r->deferred, out);
  napi_delete_async_work(env, r->work);
  request_free(r);
}

// request(fd: number, messages: Buffer): Promise<number[]>, each message's errno (0: done), in order.
// Takes the socket once queued; when it throws, the socket is still the caller's.
static napi_value request(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  void *bytes = NULL;
  size_t length = 0;
  bool is_buffer = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[1], &bytes, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "request(fd: number, messages: Buffer holding whole netlink messages)");
    return NULL;
  }
  Request *r = calloc(1, sizeof *r);
  if (r) r->message = malloc(length ? length : 1);
  if (!r || !r->message) {
    free(r);
    throw_errno(env, "request", ENOMEM);
    return NULL;
  }
  // Walked in the copy, which malloc aligned as the headers need: whole messages, and nothing else.
  memcpy(r->message, bytes, length);
  size_t count = 0, at = 0;
  while (at + sizeof(struct nlmsghdr) <= length) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)((char *)r->message + at);
    if (h->nlmsg_len < sizeof *h || h->nlmsg_len > length - at) break;
    count++;
    at += NLMSG_ALIGN(h->nlmsg_len);
  }
  if (count == 0 || at < length) {
    request_free(r);
    napi_throw_type_error(env, NULL, "request(fd: number, messages: Buffer holding whole netlink messages)");
    return NULL;
  }
  r->seqs = calloc(count, sizeof *r->seqs);
  r->results = calloc(count, sizeof *r->results);
  if (!r->seqs || !r->results) {
    request_free(r);
    throw_errno(env, "request", ENOMEM);
    return NULL;
  }
  r->fd = fd;
  r->length = length;
  r->count = count;
  at = 0;
  for (size_t i = 0; i < count; i++) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)((char *)r->message + at);
    r->seqs[i] = h->nlmsg_seq;
    r->results[i] = UNANSWERED;
    at += NLMSG_ALIGN(h->nlmsg_len);
  }
  napi_value promise = queue(env, "request: cannot queue the netlink request", transact, settle, r, &r->deferred, &r->work);
  if (!promise) request_free(r);
  return promise;
}

typedef struct {
  char *path;
  char *temp;
  void *data;
  size_t length;
  int result; // 0, or the errno of the step that failed
  napi_deferred deferred;
  napi_async_work work;
} Replace;

// On a worker thread: the temporary file written whole, then renamed over the file. Not fsynced (see
// agent/pool/checkpoint.ts).
static void replace_on_worker(napi_env env, void *data) {
  (void)env;
  Replace *r = data;
  // O_NOFOLLOW: a link planted at the temporary name is not followed to some other file.
  int fd = open(r->temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    r->result = errno;
    return;
  }
  for (size_t done = 0; done < r->length;) {
    ssize_t n = write(fd, (char *)r->data + done, r->length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      r->result = n < 0 ? errno : EIO;
      close(fd);
      unlink(r->temp);
      return;
    }
    done += (size_t)n;
  }
  if (close(fd) != 0 || rename(r->temp, r->path) != 0) {
    r->result = errno;
    unlink(r->temp);
  }
}

static void replace_free(Replace *r) {
  free(r->path);
  free(r->temp);
  free(r->data);
  free(r);
}

static void replace_settle(napi_env env, napi_status status, void *data) {
  Replace *r = data;
  napi_value out;
  napi_create_int32(env, status == napi_ok ? r->result : ECANCELED, &out);
  napi_resolve_deferred(env, r->deferred, out);
  napi_delete_async_work(env, r->work);
  replace_free(r);
}

// replaceFile(path: string, data: Buffer): Promise<number>, 0 once path holds data, else the errno of the
// step that failed.
static napi_value replace_file(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  size_t path_length = 0;
  void *bytes = NULL;
  size_t length = 0;
  bool is_buffer = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &path_length) != napi_ok ||
      path_length == 0 || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[1], &bytes, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "replaceFile(path: string, data: Buffer)");
    return NULL;
  }
  Replace *r = calloc(1, sizeof *r);
  if (r) {
    r->path = malloc(path_length + 1);
    r->temp = malloc(path_length + 5);
    r->data = malloc(length ? length : 1);
  }
  if (!r || !r->path || !r->temp || !r->data) {
    if (r) replace_free(r);
    throw_errno(env, "replaceFile", ENOMEM);
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], r->path, path_length + 1, &path_length);
  // A NUL inside would make it a shorter path: another file.
  if (strlen(r->path) != path_length) {
    replace_free(r);
    napi_throw_type_error(env, NULL, "replaceFile: the path has a NUL in it");
    return NULL;
  }
  snprintf(r->temp, path_length + 5, "%s.tmp", r->path);
  memcpy(r->data, bytes, length);
  r->length = length;
  napi_value promise = queue(env, "replaceFile: cannot queue the write", replace_on_worker, replace_settle, r, &r->deferred, &r->work);
  if (!promise) replace_free(r);
  return promise;
}

// trim(): boolean, whether any memory went back to the kernel.
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value released;
  napi_get_boolean(env, malloc_trim(0) == 1, &released);
  return released;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "setns", NAPI_AUTO_LENGTH, enter_netns, NULL, &fn);
  napi_set_named_property(env, exports, "setns", fn);
  napi_create_function(env, "socket", NAPI_AUTO_LENGTH, open_socket, NULL, &fn);
  napi_set_named_property(env, exports, "socket", fn);
  napi_create_function(env, "indexOf", NAPI_AUTO_LENGTH, index_of, NULL, &fn);
  napi_set_named_property(env, exports, "indexOf", fn);
  napi_create_function(env, "request", NAPI_AUTO_LENGTH, request, NULL, &fn);
  napi_set_named_property(env, exports, "request", fn);
  napi_create_function(env, "replaceFile", NAPI_AUTO_LENGTH, replace_file, NULL, &fn);
  napi_set_named_property(env, exports, "replaceFile", fn);
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
