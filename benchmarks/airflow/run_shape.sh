#!/bin/bash
# Trigger one run of an Airflow shape DAG (benchmarks/airflow_shapes.py write), wait for it, and print
# its figures (airflow_shapes.py measure) plus the CPU of every Airflow process (with the task processes
# they reaped) per task, read from /proc. Airflow's api-server, scheduler and dag-processor must run.
#   . benchmarks/airflow/env.sh && flock /work/bench.lock benchmarks/airflow/run_shape.sh shapes_chain
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
dag=$1
python=${MYAPP_PYTHON:-python3}
db=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN/+psycopg2/}
cpu() {
  local t=0 p f
  for p in $(pgrep -f "$AIRFLOW_VENV/bin/" || true); do
    f=$(cut -d')' -f2 "/proc/$p/stat" 2>/dev/null) || continue
    t=$(echo "$f" | awk -v t="$t" '{print t + ($12+$13+$14+$15)}')
  done
  echo "$t"
}
state() { psql "$db" -Atc "select state from dag_run where dag_id='$dag' and run_id='$run'"; }
machine() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
c0=$(cpu); m0=$(machine); l0=$(cut -d' ' -f1 /proc/loadavg)
run=bench_$(date +%s)
airflow dags trigger "$dag" -r "$run" > /dev/null
until [ "$(state)" = success ] || [ "$(state)" = failed ]; do sleep 1; done
c1=$(cpu); m1=$(machine); l1=$(cut -d' ' -f1 /proc/loadavg)
n=$(psql "$db" -Atc "select count(*) from task_instance where dag_id='$dag' and run_id='$run'")
"$python" "$here/../airflow_shapes.py" measure --airflow-db "$db" --dag "$dag" --run-id "$run"
tick=$(getconf CLK_TCK)
echo "  airflow processes: $(echo "($c1-$c0)*1000/$tick/$n" | bc -l | cut -c1-6) ms CPU per task (PostgreSQL not included);" \
     "whole machine $(echo "($m1-$m0)*1000/$tick/$n" | bc -l | cut -c1-6) ms per task; load $l0 -> $l1"
