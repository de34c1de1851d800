# The NetBox plugin's own tests, run by NetBox's test runner inside the NetBox root.
log="$UNICOP_VAR/test/netbox-plugin.log"
scripts/test-plugin 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
ran=$(grep -oE '^Ran [0-9]+ tests?' "$log" | tail -1 | grep -oE '[0-9]+')
if [ -n "$ran" ]; then
  bad=$(grep -E '^FAILED \(' "$log" | tail -1 | grep -oE '(failures|errors)=[0-9]+' | awk -F= '{n += $2} END {print n + 0}')
  [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
  echo "$((ran - bad)) $bad" >"$SUITE_RESULT"
fi
