# core.cmake: unit tests of job states, the job log, the job store, the job index and the
# status-read cache.
lb_unit_test(jobstate lb_jobs)
lb_unit_test(joblog lb_jobs)
lb_unit_test(jobstore lb_core)
lb_unit_test(jobindex lb_core)
lb_unit_test(jobcache lb_core)
