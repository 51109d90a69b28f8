"""us_testkit: what the integration tests (tests/integration), the load test
(tests/load) and the benchmarks (bench/) share to drive a real httpd with
mod_upload_session. Put tests/ on sys.path and import its modules:

  procs    ports, waiting, /proc lookups, the children's memory (VmRSS, VmHWM)
  server   UploadServer (one httpd in its own directory) and User (key lines)
  api      answer checks, the expected 422 items, the upload-sessions calls
  uploads  the upload target: multipart bodies, raw posts, the SDK's way,
           session files (session_files_path / session_files_page)
  ingest   ingestion, the workspace files API (ws_files_path / ws_files_page),
           SIGKILL of an httpd, pytest fixtures for private module copies
  faults   fault injection: held and paced uploads, store locks, tmpfs
"""
