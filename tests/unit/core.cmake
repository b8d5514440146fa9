# core.cmake: unit tests of job states, the job log, the job store and the job index.
lb_unit_test(jobstate lb_jobs)
lb_unit_test(joblog lb_jobs)
lb_unit_test(jobstore lb_core)
lb_unit_test(jobindex lb_core)
