# Fake Modal server tests (tests/fake-modal). Included from tests/CMakeLists.txt, so
# paths are relative to this file's directory (CMAKE_CURRENT_LIST_DIR), not tests/.
# Needs Node >= 20 and `npm install --prefix tests/fake-modal`; without node_modules the
# tests fail (they do not skip).
# Registered only WITH_MODAL: the fake and the .proto files serve the Modal backend alone.
if(NOT WITH_MODAL)
  return()
endif()
set(LB_FAKE_MODAL_DIR ${CMAKE_CURRENT_LIST_DIR})

# The official JS SDK (npm modal@0.11.1) driven against the fake, V2 and V1 sandboxes.
add_test(NAME modal_sdk_conformance
  COMMAND node --test ${LB_FAKE_MODAL_DIR}/conformance.test.mjs
  WORKING_DIRECTORY ${LB_FAKE_MODAL_DIR})
set_tests_properties(modal_sdk_conformance PROPERTIES LABELS modal TIMEOUT 300)

# fcgi/rpc/proto/*.proto field numbers and wire types agree with the SDK's codecs.
add_test(NAME modal_proto_matches_sdk
  COMMAND node ${LB_FAKE_MODAL_DIR}/tools/check-proto-vs-sdk.mjs
  WORKING_DIRECTORY ${LB_FAKE_MODAL_DIR})
set_tests_properties(modal_proto_matches_sdk PROPERTIES LABELS modal TIMEOUT 60)
