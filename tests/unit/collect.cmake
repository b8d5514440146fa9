# Output collection (fcgi/jobs/collect.c): hostile trees and tars, make_tar round trips.
lb_unit_test(collect lb_jobs)
# Content types (fcgi/jobs/filetype.c): libmagic's answers from many threads at once.
lb_unit_test(filetype lb_jobs)
