# sandbox.cmake: the policy every backend shares (fcgi/sandbox/sandbox.c): exit -> result,
# resume-offset skipping, the I/O deadline, temp files and the tar stream -> outputs helper.
lb_unit_test(sandbox lb_sandbox)
# The local backend's pure decisions (limits, uid range, seccomp, bwrap argv); its pool of
# workspace images made ahead of time (skips without mkfs.ext4, fails under CI=true).
if(WITH_LOCAL)
  lb_unit_test(local_walls lb_sandbox)
  lb_unit_test(local_pool lb_sandbox)
  set_tests_properties(unit_local_pool PROPERTIES LABELS unit ${LB_SKIP})
endif()
