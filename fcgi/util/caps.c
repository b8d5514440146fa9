/* caps: the calling thread's capabilities, read and dropped with capget/capset/prctl. */
#include "util/caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The names of the capabilities labbox speaks of (others print as their number). */
static const struct {
    int cap;
    const char *name;
} names[] = {
    {CAP_CHOWN, "CAP_CHOWN"},         {CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
    {CAP_FOWNER, "CAP_FOWNER"},       {CAP_KILL, "CAP_KILL"},
    {CAP_SETGID, "CAP_SETGID"},       {CAP_SETUID, "CAP_SETUID"},
    {CAP_SETPCAP, "CAP_SETPCAP"},     {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
    {CAP_MKNOD, "CAP_MKNOD"},         {CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH"},
    {CAP_NET_ADMIN, "CAP_NET_ADMIN"}, {CAP_SYS_PTRACE, "CAP_SYS_PTRACE"},
};

static bool
get(struct __user_cap_data_struct d[2])
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    memset(d, 0, 2 * sizeof(*d));
    return syscall(SYS_capget, &h, d) == 0;
}

uint64_t
caps_effective(void)
{
    struct __user_cap_data_struct d[2];
    if (!get(d))
        return 0;
    return (uint64_t)d[0].effective | (uint64_t)d[1].effective << 32;
}

uint64_t
caps_missing(uint64_t want)
{
    return want & ~caps_effective();
}

void
caps_names(uint64_t mask, char *buf, size_t len)
{
    size_t used = 0;
    if (len > 0)
        buf[0] = '\0';
    for (int cap = 0; cap < 64 && used < len; cap++) {
        if (!(mask & CAPS_BIT(cap)))
            continue;
        const char *name = NULL;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (names[i].cap == cap)
                name = names[i].name;
        int k = name != NULL
                    ? snprintf(buf + used, len - used, "%s%s", used ? ", " : "", name)
                    : snprintf(buf + used, len - used, "%scapability %d", used ? ", " : "", cap);
        used = k < 0 ? len : used + (size_t)k;
    }
}

void
caps_drop_bounding(void)
{
    if (!(caps_effective() & CAPS_BIT(CAP_SETPCAP)))
        return;
    /* Up to the kernel's last capability: PR_CAPBSET_DROP fails with EINVAL past it. */
    for (int cap = 0; cap < 64; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL)
            break;
}

enum rc
caps_drop_all(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    /* Ambient capabilities would survive an exec of a plain program: clear them first (an
     * old kernel without them answers EINVAL, and then has none). */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return RC_IO;
    if (syscall(SYS_capset, &h, d) != 0)
        return RC_IO;
    return caps_effective() == 0 ? RC_OK : RC_IO;
}
