# core.cmake: unit tests of job states, the job log and the job store.
lb_unit_test(jobstate lb_jobs)
lb_unit_test(joblog lb_jobs)
lb_unit_test(jobstore lb_core)
