# The fault suite (issue #14 item 6; docs/decisions/0042), bounded for `npm test`: the compiled
# bridge and three workers processes, two editors making real NetBox edits across 50 roots with real
# webhooks, and the seed's first UNICOP_FAULT_COUNT (3) faults of a schedule over the bridge, a
# workers process, Kafka, UNICOP's Redis, NetBox's gunicorn and rqworker and the stack's real AWX
# (kill -9, then restart); then the invariant checker. All seven, once each: `scripts/test-faults`.
# Last of the suites: it kills the stack's services. The seed is the commit's (its first 8 hex
# digits), so each commit covers another three faults and a re-run repeats them; it is printed
# ("[faults] seed N") and UNICOP_FAULT_SEED=N repeats a run anywhere.
seed=$(git rev-parse HEAD 2>/dev/null | cut -c1-8) && [ -n "$seed" ] && seed=$((16#$seed)) || seed=1406
UNICOP_FAULT_SEED="${UNICOP_FAULT_SEED:-$seed}" UNICOP_FAULT_COUNT="${UNICOP_FAULT_COUNT:-3}" scripts/test-faults
