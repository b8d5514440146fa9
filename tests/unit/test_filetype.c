/* test_filetype: libmagic's types from the system database, one handle per thread (eight
 * threads typing at once get the same answers as one), the offset kept; types by name. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "jobs/filetype.h"

static const struct {
    const char *content;
    const char *type;
} samples[] = {
    {"subject,condition,score\n1,treated,3.5\n2,control,4.0\n3,treated,2.5\n", "text/csv"},
    {"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "application/pdf"},
    {"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\1\0\0\0\1\x08\x02\0\0\0\x90wS\xde", "image/png"},
    {"just some words\non two lines\n", "text/plain"},
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static int fds[NSAMPLES];

/* Make each sample an unnamed file, its offset left at 3. */
static int
make_files(void)
{
    for (size_t i = 0; i < NSAMPLES; i++) {
        char path[] = "/tmp/test_filetype.XXXXXX";
        fds[i] = mkstemp(path);
        if (fds[i] < 0)
            return -1;
        unlink(path);
        size_t n = i == 2 ? 33 : strlen(samples[i].content);
        if (write(fds[i], samples[i].content, n) != (ssize_t)n || lseek(fds[i], 3, SEEK_SET) != 3)
            return -1;
    }
    return 0;
}

/* Each thread its own open files (an offset is shared by every fd of one open file). */
static void *
typer(void *arg)
{
    long *wrong = arg;
    char type[128], path[64];
    int mine[NSAMPLES];
    for (size_t i = 0; i < NSAMPLES; i++) {
        (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[i]);
        mine[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (mine[i] < 0 || lseek(mine[i], 3, SEEK_SET) != 3)
            (*wrong)++;
    }
    for (int round = 0; round < 50 && *wrong == 0; round++)
        for (size_t i = 0; i < NSAMPLES; i++)
            if (filetype_detect_fd(mine[i], type, sizeof(type)) != RC_OK ||
                strcmp(type, samples[i].type) != 0 || lseek(mine[i], 0, SEEK_CUR) != 3)
                (*wrong)++;
    for (size_t i = 0; i < NSAMPLES; i++)
        if (mine[i] >= 0)
            close(mine[i]);
    return NULL; /* the thread's handle is closed as it ends */
}

static void
test_threads(void)
{
    char type[128];
    for (size_t i = 0; i < NSAMPLES; i++) {
        CHECK_INT(filetype_detect_fd(fds[i], type, sizeof(type)), RC_OK);
        CHECK_STR(type, samples[i].type);
        CHECK_INT((int)lseek(fds[i], 0, SEEK_CUR), 3);
    }
    pthread_t t[8];
    long wrong[8] = {0};
    for (int i = 0; i < 8; i++)
        REQUIRE_VOID(pthread_create(&t[i], NULL, typer, &wrong[i]) == 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT((int)wrong[i], 0);
    }
    /* A descriptor that is no file: an error, not a type. */
    CHECK_INT(filetype_detect_fd(-1, type, sizeof(type)), RC_IO);
}

static void
test_names(void)
{
    char type[128];
    filetype_for_output("report.html", -1, type, sizeof(type));
    CHECK_STR(type, "text/html");
    filetype_for_output("data.CSV", -1, type, sizeof(type));
    CHECK_STR(type, "text/csv");
    filetype_for_output("noextension", -1, type, sizeof(type));
    CHECK_STR(type, "application/octet-stream");
    filetype_for_output("noextension", fds[1], type, sizeof(type));
    CHECK_STR(type, "application/pdf");
    CHECK_INT(filetype_view("text/html"), FILETYPE_VIEW_DOC);
    CHECK_INT(filetype_view("image/png"), FILETYPE_VIEW_IMAGE);
    CHECK_INT(filetype_view("application/zip"), FILETYPE_VIEW_NONE);
}

int
main(void)
{
    REQUIRE(filetype_init() == RC_OK);
    REQUIRE(make_files() == 0);
    test_threads();
    test_names();
    for (size_t i = 0; i < NSAMPLES; i++)
        close(fds[i]);
    filetype_fini();
    return check_done("filetype");
}
