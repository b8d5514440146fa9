# util.cmake: unit tests of fcgi/util (file helpers).
lb_unit_test(fsutil lb_util)
