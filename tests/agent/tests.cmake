# Default agent (scripts/agent/agent.py): Python standard-library unittest, run with Debian's
# /usr/bin/python3 because that is the interpreter the local (bubblewrap) sandbox gives the agent.
# Included from tests/CMakeLists.txt, so CMAKE_CURRENT_SOURCE_DIR is tests/: use this file's dir.
add_test(NAME agent_default
         COMMAND /usr/bin/python3 -B -m unittest discover -s ${CMAKE_CURRENT_LIST_DIR} -p "test_*.py")
set_tests_properties(agent_default PROPERTIES LABELS unit TIMEOUT 300)
