# Source me: the Airflow 3.3.2 side-by-side setup of docs/benchmarks.md (LocalExecutor, parallelism 4,
# PostgreSQL). AIRFLOW_VENV: the venv Airflow is installed in; AIRFLOW_HOME: its state and DAG files.
export AIRFLOW_VENV=${AIRFLOW_VENV:-/work/venvs/airflow}
export AIRFLOW_HOME=${AIRFLOW_HOME:-/tmp/airflow-home}
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-postgresql+psycopg2://postgres@127.0.0.1/airflow_bench}
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$AIRFLOW_HOME/dags
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
# Tasks report to the API server's execution API; 8793 is taken by the scheduler's own log server.
export AIRFLOW__API__PORT=8795
export AIRFLOW__API__BASE_URL=http://127.0.0.1:8795
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:8795/execution/
export AIRFLOW__API_AUTH__JWT_SECRET=${AIRFLOW__API_AUTH__JWT_SECRET:-bench-only-jwt-secret-not-for-production}
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
export PATH=$AIRFLOW_VENV/bin:$PATH
