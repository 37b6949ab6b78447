#!/usr/bin/env bash
# Runs the in-model chaos test against deliberately broken builds of the
# library and succeeds only if the suite fails on every one of them: the
# proof that a green chaos run means something. Each mutant is a copy of the
# tree with one change applied; the working tree is never touched.
#   plain-del      Unlock deletes with plain DEL, not compare-and-delete (R1, R3)
#   minority-Q     Q = N/2 instead of N/2+1 (A5)
#   errors-grant   a node error or timeout counts as a grant (A4)
#   extend-shortens  the Extend of before E4 changed: a shorter TTL is applied
#                  as asked (no PEXPIRE GT), a failed Extend keeps Until()
#                  although nodes may have applied it, and an ended context
#                  still sends (E4, E6)
#   reservation-never-lapses  a release reserves the lock for the first
#                  in line, or hands it over to it, with no expiry (L2, L4,
#                  L12): a waiter that crashed while a reservation or a
#                  hand-over was made for it holds the name for good. Run against the contention workload (waiter
#                  crashes), it must fail on liveness (a drought, or Lock
#                  calls starved for their whole budget), not on some other
#                  checker. (The line's head that never expires, L3, is
#                  not a reliable mutant: plain first attempts still take
#                  the key between lapsed reservations, and it was caught in
#                  only some runs, by droughts just over the limit.)
#   leader-any-node  Leader answers from the first node that reports a live
#                  leadership instead of a quorum (V4): a node that missed a
#                  hand-over (frozen, cut off) reports the deposed leader
#                  until its key expires. Run against the election
#                  workload, it must fail on stale Leader answers.
#   per-node-count  the semaphore's obvious construction (S1): a permit is
#                  Q grants whatever slot each node granted, so each node
#                  only counts its holders against K; the grants of other
#                  slots are kept, and Unlock releases the value in any
#                  slot. Run against the semaphore workload, it must fail
#                  with more holders at once than permits.
# CHAOS_MUTANTS (default: all of them) runs only the mutants it names.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
dur=${CHAOS_DURATION:-20s}
mutants=${CHAOS_MUTANTS:-plain-del minority-Q errors-grant extend-shortens reservation-never-lapses leader-any-node per-node-count}
mutate() {
  case "$1" in
    plain-del)   printf "return redis.call('DEL', KEYS[1])\n" > redlock/release.lua ;;
    minority-Q)  sed -i 's|func Majority(n int) int { return n/2 + 1 }|func Majority(n int) int { return max(1, n/2) }|' internal/quorum/tally.go ;;
    errors-grant) sed -i 's|s := slot{res: quorum.Failed, err: err}|s := slot{res: quorum.Granted, val: 1, err: err}|' redlock/round.go ;;
    extend-shortens)
      sed -i "s|redis.call('PEXPIRE', KEYS\[1\], ARGV\[2\], 'GT')|redis.call('PEXPIRE', KEYS[1], ARGV[2])|" redlock/extend.lua
      perl -0pi -e 's/\tif newUntil\.Before\(until\) \{\n\t\tnewUntil = until\n\t\}\n//; s/\tif err := ctx\.Err\(\); err != nil \{ \/\/ E6[^\n]*\n[^\n]*\n\t\}\n//' redlock/lock.go ;;
    reservation-never-lapses) sed -i "s|redis.pcall('SET', lock, '~r:' .. h, 'PX', reserve_ms)|redis.pcall('SET', lock, '~r:' .. h)|; s|redis.pcall('SET', lock, string.sub(g, sep + 1), 'PX', reserve_ms)|redis.pcall('SET', lock, string.sub(g, sep + 1))|" redlock/line_head.lua ;;
    leader-any-node) sed -i 's|r.bestN >= r.q|r.bestN >= 1|g' redlock/election_read.go ;;
    per-node-count)
      sed -i 's/return r.picks.Decided(r.tally)/return r.tally.Decided()/; s/return r.ctxErr == nil && r.picks.Succeeded(r.tally)/return r.ctxErr == nil \&\& r.tally.Succeeded()/; s/return s.res == quorum.Granted && (!r.choose || s.choice == r.picks.Best)/return s.res == quorum.Granted/' redlock/round.go
      sed -i 's|s.leave(w, tau, value, won)|s.leave(w, tau, "", -1)|; s|s.script("release", value, slot, -1,|s.script("release", value, -1, -1,|' redlock/semaphore_attempt.go ;;
  esac
}
# test_for prints the chaos test a mutant runs against, and what its failure
# must say (an extended regexp over the output).
test_for() {
  case "$1" in
    reservation-never-lapses) echo 'TestChaosProcessTierContention$' 'no acquisition for [0-9]+ms while clients waited|waited their whole budget' ;;
    leader-any-node) echo 'TestChaosProcessTierElection$' 'Leader answers older than a leadership begun before the read' ;;
    plain-del|minority-Q|errors-grant|extend-shortens) echo 'TestChaosProcessTier$' 'violations' ;;
    per-node-count) echo 'TestChaosProcessTierSemaphore$' 'holders at once with [0-9]+ permits' ;;
    *) echo "chaos-broken: unknown mutant $1" >&2; exit 1 ;;
  esac
}
caught=0 missed=()
for m in $mutants; do
  read -r test want <<<"$(test_for "$m")"
  [ -n "$test" ] || exit 1
  tmp=$(mktemp -d)
  (cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp")
  (cd "$tmp" && mutate "$m")
  if diff -rq "$root/redlock" "$tmp/redlock" >/dev/null && diff -rq "$root/internal/quorum" "$tmp/internal/quorum" >/dev/null; then
    echo "chaos-broken: mutant $m did not apply: its pattern is stale" >&2
    exit 1
  fi
  echo "== mutant $m: ${test%\$} runs for $dur and must fail"
  # The faults are random (a new seed per run): a mutant that slips through
  # one run gets a second one. Seen once in about ten CI runs for
  # per-node-count, whose overlap needs a split view at the right moment.
  passed=0
  for try in 1 2; do
    if (cd "$tmp" && CHAOS_DURATION=$dur go test -count=1 -run "$test" ./internal/chaos/ >"$tmp/out" 2>&1); then
      passed=1
      [ "$try" = 1 ] && echo "   not caught in run 1: one more run"
    else
      passed=0
      break
    fi
  done
  if [ "$passed" = 1 ]; then
    missed+=("$m")
  elif grep -Eq "$want" "$tmp/out"; then
    caught=$((caught+1))
  else # failed, but not by a checker: say so instead of counting it
    tail -20 "$tmp/out"
    missed+=("$m (failed, but not with: $want)")
  fi
  grep -E '^chaos|violations' "$tmp/out" | cut -c1-600
  rm -rf "$tmp"
done
if [ ${#missed[@]} -gt 0 ]; then
  echo "chaos-broken: the suite MISSED: ${missed[*]}"
  exit 1
fi
echo "chaos-broken: the suite caught all $caught broken builds"
