"""Publishing a build's exports to the Hugging Face Hub, as one commit of a dataset repository."""

from __future__ import annotations

import os
from pathlib import Path

from raspberry.build_files.store import BuildStore
from raspberry.errors import RaspberryError

_TRANSPORTS = ("httpx", "httpcore", "requests", "urllib3")


def push_build(
    output_dir: str | Path,
    build_id: str,
    repo: str,
    token: str | None = None,
    *,
    private: bool = False,
    revision: str | None = None,
    allow_partial: bool = False,
) -> str:
    """Upload `<build>/exports/` (files and card) to the dataset repo `repo` in one commit, making
    the repo (and the branch `revision`) when missing; return the commit's URL. The token (HF_TOKEN
    unless given) is used for these requests only and never written anywhere."""
    from huggingface_hub import HfApi  # imported here: only this command needs it

    token = token or os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise RaspberryError(
            "HF_TOKEN is not set: put a Hugging Face token with write access in the environment "
            "(it is never read from the command line or written anywhere)"
        )
    store = BuildStore(output_dir, build_id)
    folder = store.exports()
    if not folder.is_file("README.md"):
        partial = (
            " (it has exports-partial/: rerun it first)"
            if store.exports(partial=True).exists()
            else ""
        )
        raise RaspberryError(
            f"build '{build_id}' has no complete exports under {folder.url()}{partial}; "
            "run `raspberry build` to the end first"
        )
    short = (store.manifest().get("runs") or [{}])[-1].get("shortfalls", [])
    if short and not allow_partial:
        raise RaspberryError(
            f"build '{build_id}' fell short ({'; '.join(short)}); push it anyway with "
            "--allow-partial"
        )
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    # Read through the storage layer, so a build on object storage is pushed the same way.
    files = [CommitOperationAdd(rel, folder.read_bytes(rel)) for rel in folder.glob("**")]

    api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo, branch=revision, repo_type="dataset", exist_ok=True)
        commit = api.create_commit(
            repo,
            files,
            repo_type="dataset",
            revision=revision,
            commit_message=f"Raspberry build {build_id}",
        )
    except HfHubHTTPError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        status = exc.response.status_code if exc.response is not None else None
        hint = "; check that HF_TOKEN has write access to it" if status in (401, 403) else ""
        raise RaspberryError(f"the Hub refused the push to {repo}: {first}{hint}") from None
    except Exception as exc:
        # No answer at all (DNS, refused, timed out): the transport's own error, whichever HTTP
        # library this huggingface_hub uses (httpx, its httpx2 fork, requests).
        if not isinstance(exc, OSError) and not type(exc).__module__.startswith(_TRANSPORTS):
            raise
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        raise RaspberryError(
            f"cannot reach the Hub at {endpoint} ({type(exc).__name__}: {exc}); nothing was "
            f"pushed: check the network and run `raspberry push {build_id}` again"
        ) from None
    return str(commit.commit_url)
