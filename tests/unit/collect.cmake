# Output collection (fcgi/jobs/collect.c): hostile trees and tars, make_tar round trips.
lb_unit_test(collect lb_jobs)
