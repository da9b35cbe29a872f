/*
 * A tiny scriptable client on Apache ZooKeeper's C library (libzookeeper_mt),
 * used by tests/test_e2e_clients.py. Compiled at test time:
 *
 *   gcc -O0 -o zkclient tests/c/zkclient.c -lzookeeper_mt
 *
 * Usage: zkclient HOST:PORT CMD [ARGS...] [-- CMD [ARGS...]]...
 *
 * Each command prints exactly one line on stdout:
 *   <cmd> <path> rc=<zoo error code> [details]
 * The watch commands (watch / wget / wls) print "WATCHING <path>" once the
 * watch is set and then "EVENT type=<t> state=<s> path=<p>" when it fires
 * (or "EVENT timeout" after 20 s).
 */
#ifndef THREADED
#define THREADED 1 /* the synchronous API is only declared for the _mt library */
#endif
#include <zookeeper/zookeeper.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int connected = 0;
static int expired = 0;
static int event_seen = 0;
static int ev_type, ev_state;
static char ev_path[1024];

static void global_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)path; (void)ctx;
    pthread_mutex_lock(&mu);
    if (type == ZOO_SESSION_EVENT) {
        if (state == ZOO_CONNECTED_STATE) connected = 1;
        if (state == ZOO_EXPIRED_SESSION_STATE) expired = 1;
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)ctx;
    pthread_mutex_lock(&mu);
    if (type != ZOO_SESSION_EVENT) {
        event_seen = 1;
        ev_type = type;
        ev_state = state;
        snprintf(ev_path, sizeof ev_path, "%s", path ? path : "");
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void deadline_in(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void print_stat(const struct Stat *s) {
    printf(" czxid=%lld mzxid=%lld pzxid=%lld version=%d cversion=%d aversion=%d"
           " ephemeralOwner=0x%llx dataLength=%d numChildren=%d",
           (long long)s->czxid, (long long)s->mzxid, (long long)s->pzxid, s->version, s->cversion,
           s->aversion, (unsigned long long)s->ephemeralOwner, s->dataLength, s->numChildren);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void wait_event(const char *path) {
    printf("WATCHING %s\n", path);
    fflush(stdout);
    struct timespec ts;
    deadline_in(&ts, 20000);
    pthread_mutex_lock(&mu);
    while (!event_seen) {
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT) break;
    }
    if (event_seen)
        printf("EVENT type=%d state=%d path=%s\n", ev_type, ev_state, ev_path);
    else
        printf("EVENT timeout\n");
    event_seen = 0;
    pthread_mutex_unlock(&mu);
}

/* ACL specs: open | read | digest:user:hash:perms */
static int parse_acl(const char *spec, struct ACL_vector *out, struct ACL *one, char *buf, size_t bufsz) {
    if (strcmp(spec, "open") == 0) {
        *out = ZOO_OPEN_ACL_UNSAFE;
        return 0;
    }
    if (strcmp(spec, "read") == 0) {
        *out = ZOO_READ_ACL_UNSAFE;
        return 0;
    }
    if (strncmp(spec, "digest:", 7) == 0) {
        /* digest:user:hash:perms(int) */
        snprintf(buf, bufsz, "%s", spec + 7);
        char *last = strrchr(buf, ':');
        if (!last) return -1;
        *last = 0;
        one->perms = atoi(last + 1);
        one->id.scheme = "digest";
        one->id.id = buf;
        out->count = 1;
        out->data = one;
        return 0;
    }
    return -1;
}

static int run(zhandle_t *zh, int argc, char **argv) {
    const char *cmd = argv[0];
    const char *path = argc > 1 ? argv[1] : "/";
    int rc;
    struct Stat st;
    memset(&st, 0, sizeof st);

    if (strcmp(cmd, "create") == 0 || strcmp(cmd, "create2") == 0) {
        const char *data = argc > 2 ? argv[2] : "";
        int flags = argc > 3 ? atoi(argv[3]) : 0;
        char created[1024] = "";
        if (cmd[6] == '2') {
            rc = zoo_create2(zh, path, data, (int)strlen(data), &ZOO_OPEN_ACL_UNSAFE, flags, created,
                             sizeof created, &st);
            printf("create2 %s rc=%d created=%s", path, rc, rc == ZOK ? created : "");
            if (rc == ZOK) print_stat(&st);
            printf("\n");
        } else {
            rc = zoo_create(zh, path, data, (int)strlen(data), &ZOO_OPEN_ACL_UNSAFE, flags, created,
                            sizeof created);
            printf("create %s rc=%d created=%s\n", path, rc, rc == ZOK ? created : "");
        }
    } else if (strcmp(cmd, "get") == 0 || strcmp(cmd, "wget") == 0) {
        char buf[4096];
        int len = sizeof buf - 1;
        if (cmd[0] == 'w')
            rc = zoo_wget(zh, path, node_watcher, NULL, buf, &len, &st);
        else
            rc = zoo_get(zh, path, 0, buf, &len, &st);
        if (rc == ZOK && len >= 0) buf[len] = 0; else buf[0] = 0;
        printf("get %s rc=%d data=%s", path, rc, buf);
        if (rc == ZOK) print_stat(&st);
        printf("\n");
        if (cmd[0] == 'w' && rc == ZOK) wait_event(path);
    } else if (strcmp(cmd, "set") == 0) {
        const char *data = argc > 2 ? argv[2] : "";
        int version = argc > 3 ? atoi(argv[3]) : -1;
        rc = zoo_set2(zh, path, data, (int)strlen(data), version, &st);
        printf("set %s rc=%d", path, rc);
        if (rc == ZOK) print_stat(&st);
        printf("\n");
    } else if (strcmp(cmd, "ls") == 0 || strcmp(cmd, "wls") == 0) {
        struct String_vector sv;
        memset(&sv, 0, sizeof sv);
        if (cmd[0] == 'w')
            rc = zoo_wget_children(zh, path, node_watcher, NULL, &sv);
        else
            rc = zoo_get_children(zh, path, 0, &sv);
        printf("ls %s rc=%d children=", path, rc);
        if (rc == ZOK) {
            qsort(sv.data, sv.count, sizeof(char *), cmp_str);
            for (int i = 0; i < sv.count; i++) printf("%s%s", i ? "," : "", sv.data[i]);
            deallocate_String_vector(&sv);
        }
        printf("\n");
        if (cmd[0] == 'w' && rc == ZOK) wait_event(path);
    } else if (strcmp(cmd, "stat") == 0 || strcmp(cmd, "watch") == 0) {
        if (cmd[0] == 'w')
            rc = zoo_wexists(zh, path, node_watcher, NULL, &st);
        else
            rc = zoo_exists(zh, path, 0, &st);
        printf("stat %s rc=%d", path, rc);
        if (rc == ZOK) print_stat(&st);
        printf("\n");
        if (cmd[0] == 'w' && (rc == ZOK || rc == ZNONODE)) wait_event(path);
    } else if (strcmp(cmd, "getacl") == 0) {
        struct ACL_vector acl;
        memset(&acl, 0, sizeof acl);
        rc = zoo_get_acl(zh, path, &acl, &st);
        printf("getacl %s rc=%d acl=", path, rc);
        if (rc == ZOK) {
            for (int i = 0; i < acl.count; i++)
                printf("%s%s:%s:%d", i ? "," : "", acl.data[i].id.scheme, acl.data[i].id.id, acl.data[i].perms);
            printf(" aversion=%d", st.aversion);
            deallocate_ACL_vector(&acl);
        }
        printf("\n");
    } else if (strcmp(cmd, "setacl") == 0) {
        struct ACL_vector acl;
        struct ACL one;
        char buf[512];
        int version = argc > 3 ? atoi(argv[3]) : -1;
        if (argc < 3 || parse_acl(argv[2], &acl, &one, buf, sizeof buf) != 0) {
            printf("setacl %s rc=bad-acl-spec\n", path);
            return 0;
        }
        rc = zoo_set_acl(zh, path, version, &acl);
        printf("setacl %s rc=%d\n", path, rc);
    } else if (strcmp(cmd, "delete") == 0) {
        int version = argc > 2 ? atoi(argv[2]) : -1;
        rc = zoo_delete(zh, path, version);
        printf("delete %s rc=%d\n", path, rc);
    } else if (strcmp(cmd, "addauth") == 0) {
        /* addauth digest user:pw */
        const char *cred = argc > 2 ? argv[2] : "";
        rc = zoo_add_auth(zh, argv[1], cred, (int)strlen(cred), NULL, NULL);
        usleep(200000);
        printf("addauth %s rc=%d\n", argv[1], rc);
    } else if (strcmp(cmd, "sleep") == 0) {
        usleep(atoi(path) * 1000);
        printf("sleep rc=0\n");
    } else {
        printf("%s rc=unknown-command\n", cmd);
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST:PORT CMD [ARGS] [-- CMD [ARGS]]...\n", argv[0]);
        return 2;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = zookeeper_init(argv[1], global_watcher, 10000, NULL, NULL, 0);
    if (!zh) {
        printf("init failed errno=%d\n", errno);
        return 1;
    }
    struct timespec ts;
    deadline_in(&ts, 15000);
    pthread_mutex_lock(&mu);
    while (!connected && !expired) {
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT) break;
    }
    int ok = connected;
    pthread_mutex_unlock(&mu);
    if (!ok) {
        printf("connect failed state=%d\n", zoo_state(zh));
        zookeeper_close(zh);
        return 1;
    }
    printf("connected session=0x%llx timeout=%d\n", (unsigned long long)zoo_client_id(zh)->client_id,
           zoo_recv_timeout(zh));
    fflush(stdout);

    int start = 2;
    for (int i = 2; i <= argc; i++) {
        if (i == argc || strcmp(argv[i], "--") == 0) {
            if (i > start) run(zh, i - start, argv + start);
            start = i + 1;
        }
    }
    int rc = zookeeper_close(zh);
    printf("closed rc=%d\n", rc);
    return 0;
}
