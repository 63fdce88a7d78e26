"""A build's files: its rows (records.py, whose types give the Parquet schemas), the store that
reads and writes its shards, completion records, manifest and lock (store.py), on any fsspec
file system (folder.py)."""
