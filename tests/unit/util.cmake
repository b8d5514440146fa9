# util.cmake: unit tests of fcgi/util (file helpers, configuration snapshots).
lb_unit_test(fsutil lb_util)
lb_unit_test(cfgsnap lb_util)
