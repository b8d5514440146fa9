# core.cmake: unit tests of the job store's pure parts and the job log.
lb_unit_test(jobstate lb_jobs)
lb_unit_test(joblog lb_jobs)
