"""Run a command against a throwaway production stack: `python scripts/with_stack.py -- go test ./...`.

The same as `python -m cairn_tools.cluster -- COMMAND` (cairn_tools/cluster.py, where the stack is defined):
the command sees CAIRN_TARGET=127.0.0.1:PORT; everything is torn down afterwards, whatever happens.
"""

import sys

from cairn_tools.cluster import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
