# sandbox.cmake: the policy every backend shares (fcgi/sandbox/sandbox.c): exit -> result,
# resume-offset skipping, the I/O deadline, temp files and the tar stream -> outputs helper.
lb_unit_test(sandbox lb_sandbox)
# The local backend's pure decisions (limits, uid range, seccomp, bwrap argv).
if(WITH_LOCAL)
  lb_unit_test(local_walls lb_sandbox)
endif()
