/* test_jobstate: names, parsing and the legal transitions of the job life. */
#include "check.h"
#include "jobs/jobstate.h"

int
main(void)
{
    /* Every name parses back to itself. */
    for (int i = 0; i < JOB_STATE__MAX; i++) {
        enum job_state s;
        CHECK(jobstate_parse(jobstate_str((enum job_state)i), &s));
        CHECK_INT(s, i);
    }
    for (int i = 1; i < REASON__MAX; i++) {
        enum job_reason r;
        CHECK(jobstate_reason_parse(jobstate_reason_str((enum job_reason)i), &r));
        CHECK_INT(r, i);
    }
    enum job_state s;
    CHECK(!jobstate_parse("done", &s));
    CHECK(!jobstate_parse(NULL, &s));
    CHECK(jobstate_reason_str(REASON_NONE) == NULL);
    CHECK_STR(jobstate_str(JOB_TIMED_OUT), "timed_out");
    CHECK_STR(jobstate_reason_str(REASON_SANDBOX_ERROR), "sandbox_error");

    /* The happy path. */
    CHECK(jobstate_can_transition(JOB_QUEUED, JOB_STAGING));
    CHECK(jobstate_can_transition(JOB_STAGING, JOB_RUNNING));
    CHECK(jobstate_can_transition(JOB_RUNNING, JOB_COLLECTING));
    CHECK(jobstate_can_transition(JOB_COLLECTING, JOB_SUCCEEDED));
    /* Every live state can fail or be canceled; timeouts come from running or collecting. */
    for (int i = JOB_QUEUED; i <= JOB_COLLECTING; i++) {
        CHECK(jobstate_can_transition((enum job_state)i, JOB_FAILED));
        CHECK(jobstate_can_transition((enum job_state)i, JOB_CANCELED));
        CHECK(!jobstate_is_terminal((enum job_state)i));
    }
    CHECK(jobstate_can_transition(JOB_RUNNING, JOB_TIMED_OUT));
    CHECK(jobstate_can_transition(JOB_COLLECTING, JOB_TIMED_OUT));
    CHECK(!jobstate_can_transition(JOB_QUEUED, JOB_TIMED_OUT));
    /* No skipping ahead, no going back, nothing out of a terminal state. */
    CHECK(!jobstate_can_transition(JOB_QUEUED, JOB_RUNNING));
    CHECK(!jobstate_can_transition(JOB_QUEUED, JOB_SUCCEEDED));
    CHECK(!jobstate_can_transition(JOB_RUNNING, JOB_SUCCEEDED));
    CHECK(!jobstate_can_transition(JOB_RUNNING, JOB_STAGING));
    for (int t = JOB_SUCCEEDED; t < JOB_STATE__MAX; t++) {
        CHECK(jobstate_is_terminal((enum job_state)t));
        for (int to = 0; to < JOB_STATE__MAX; to++)
            CHECK(!jobstate_can_transition((enum job_state)t, (enum job_state)to));
    }
    CHECK(!jobstate_can_transition(JOB_STATE__MAX, JOB_FAILED));
    return check_done("jobstate");
}
