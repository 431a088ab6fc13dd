"""A test double of the GitHub REST API: a real HTTP server on 127.0.0.1 with in-memory state.

It implements only the endpoints the devops agent calls (issues, issue comments, pull requests, workflow
runs and re-runs, repository contents), answers with the JSON shapes GitHub documents, and checks the
``Authorization`` header, so the agent's real PyGithub client is exercised over real HTTP.

    with GitHubDouble(token="t") as gh:
        gh.add_repo("acme/app")
        # point GITHUB_BASE_URL at gh.url and GITHUB_TOKEN at "t"
"""

from __future__ import annotations

import base64
import json
import re
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.doubles.local_server import LocalHTTPServer


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Repo:
    """One repository's state: issues and pull requests share a number sequence, as on GitHub."""

    def __init__(self, full_name: str) -> None:
        self.full_name = full_name
        self.items: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self.files: dict[tuple[str, str], bytes] = {}  # (ref, path) -> content
        self.default_branch = "main"


class GitHubDouble(LocalHTTPServer):
    """The server, its state and the requests it saw (method, path) in order."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self._next_id = 1000
        self._lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                double._handle(self, "GET")

            def do_POST(self) -> None:
                double._handle(self, "POST")

            def do_PATCH(self) -> None:
                double._handle(self, "PATCH")

        super().__init__(Handler)
        self.url = self.origin

    # --- seeding ---------------------------------------------------------------------------------
    def add_repo(self, full_name: str) -> Repo:
        self.repos[full_name] = Repo(full_name)
        return self.repos[full_name]

    def add_pull(self, repo: str, title: str, head: str, base: str = "main", body: str = "", **extra: Any) -> int:
        r = self.repos[repo]
        number = self._new_item(r, {"title": title, "body": body, "labels": [], "assignees": []})
        r.items[number]["pull"] = {"head": head, "base": base, **extra}
        return number

    def add_run(self, repo: str, name: str, branch: str, status: str, conclusion: str | None, attempt: int = 1) -> int:
        run_id = self._new_id()
        self.repos[repo].runs[run_id] = {
            "name": name,
            "head_branch": branch,
            "status": status,
            "conclusion": conclusion,
            "run_attempt": attempt,
            "created_at": _now(),
        }
        return run_id

    def add_file(self, repo: str, path: str, content: bytes, ref: str = "main") -> None:
        self.repos[repo].files[(ref, path)] = content

    # --- request handling ------------------------------------------------------------------------
    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def _new_item(self, r: Repo, fields: dict[str, Any]) -> int:
        with self._lock:
            number = len(r.items) + 1
            r.items[number] = {
                "id": self._next_id + number,
                "number": number,
                "state": "open",
                "state_reason": None,
                "user": "octo-bot",
                "created_at": _now(),
                "updated_at": _now(),
                "closed_at": None,
                **fields,
            }
            r.comments[number] = []
        return number

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.requests.append((method, path))
        auth = h.headers.get("Authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return self._send(
                h, 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
            )
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}") if length else {}
        m = re.match(r"^/repos/([^/]+/[^/]+)(/.*)?$", path)
        if not m or m.group(1) not in self.repos:
            return self._send(h, 404, {"message": "Not Found"})
        status, payload = self._route(self.repos[m.group(1)], method, m.group(2) or "", query, body)
        self._send(h, status, payload)

    def _route(self, r: Repo, method: str, rest: str, query: dict[str, str], body: dict) -> tuple[int, Any]:
        if rest == "" and method == "GET":
            return 200, self._repo_json(r)
        if rest == "/issues" and method == "POST":
            if not body.get("title"):
                return 422, {"message": "Validation Failed", "errors": [{"field": "title", "code": "missing_field"}]}
            number = self._new_item(
                r,
                {
                    "title": body["title"],
                    "body": body.get("body"),
                    "labels": list(body.get("labels", [])),
                    "assignees": list(body.get("assignees", [])),
                },
            )
            return 201, self._issue_json(r, number)
        if rest == "/issues" and method == "GET":
            state = query.get("state", "open")
            labels = set(filter(None, query.get("labels", "").split(",")))
            found = [
                self._issue_json(r, n)
                for n, item in sorted(r.items.items(), reverse=True)
                if (state == "all" or item["state"] == state) and labels <= set(item["labels"])
            ]
            return 200, found
        if m := re.match(r"^/issues/(\d+)$", rest):
            number = int(m.group(1))
            if number not in r.items:
                return 404, {"message": "Not Found"}
            if method == "PATCH":
                item = r.items[number]
                for key in ("title", "body", "labels", "assignees", "state_reason"):
                    if key in body:
                        item[key] = body[key]
                if body.get("state") in ("open", "closed"):
                    item["state"] = body["state"]
                    item["closed_at"] = _now() if body["state"] == "closed" else None
                item["updated_at"] = _now()
            return 200, self._issue_json(r, number)
        if (m := re.match(r"^/issues/(\d+)/comments$", rest)) and method == "POST":
            number = int(m.group(1))
            if number not in r.items:
                return 404, {"message": "Not Found"}
            comment_id = self._new_id()
            comment = {"id": comment_id, "body": body.get("body", ""), "user": "octo-bot", "created_at": _now()}
            r.comments[number].append(comment)
            return 201, self._comment_json(r, number, comment)
        if rest == "/pulls" and method == "GET":
            state = query.get("state", "open")
            found = [
                self._pull_json(r, n)
                for n, item in sorted(r.items.items(), reverse=True)
                if "pull" in item and (state == "all" or item["state"] == state)
            ]
            return 200, found
        if (m := re.match(r"^/pulls/(\d+)$", rest)) and method == "GET":
            number = int(m.group(1))
            if "pull" not in r.items.get(number, {}):
                return 404, {"message": "Not Found"}
            return 200, self._pull_json(r, number)
        if rest == "/actions/runs" and method == "GET":
            runs = [
                self._run_json(r, run_id)
                for run_id, run in sorted(r.runs.items(), reverse=True)
                if query.get("branch") in (None, run["head_branch"])
                and query.get("status") in (None, run["status"], run["conclusion"])
            ]
            return 200, {"total_count": len(runs), "workflow_runs": runs}
        if m := re.match(r"^/actions/runs/(\d+)(/rerun-failed-jobs)?$", rest):
            run_id = int(m.group(1))
            if run_id not in r.runs:
                return 404, {"message": "Not Found"}
            if m.group(2) and method == "POST":
                run = r.runs[run_id]
                if run["status"] != "completed" or run["conclusion"] == "success":
                    return 403, {"message": "This workflow run cannot be rerun"}
                run.update(status="queued", conclusion=None, run_attempt=run["run_attempt"] + 1)
                return 201, {}
            return 200, self._run_json(r, run_id)
        if (m := re.match(r"^/contents/(.+)$", rest)) and method == "GET":
            ref = query.get("ref", r.default_branch)
            return self._contents(r, m.group(1).strip("/"), ref)
        return 404, {"message": "Not Found"}

    def _contents(self, r: Repo, path: str, ref: str) -> tuple[int, Any]:
        if (ref, path) in r.files:
            data = r.files[(ref, path)]
            return 200, {
                "type": "file",
                "encoding": "base64",
                "size": len(data),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "sha": f"{abs(hash(data)):040x}"[:40],
                "content": base64.encodebytes(data).decode(),
                "url": f"{self.url}/repos/{r.full_name}/contents/{path}?ref={ref}",
                "html_url": f"https://github.example/{r.full_name}/blob/{ref}/{path}",
            }
        children = sorted(
            {p[len(path) + 1 :].split("/")[0] for (f_ref, p) in r.files if f_ref == ref and p.startswith(path + "/")}
        )
        if not children:
            return 404, {"message": "Not Found"}
        entries = []
        for name in children:
            child = f"{path}/{name}"
            kind = "file" if (ref, child) in r.files else "dir"
            entries.append(
                {
                    "type": kind,
                    "name": name,
                    "path": child,
                    "size": len(r.files.get((ref, child), b"")),
                    "sha": "0" * 40,
                    "url": f"{self.url}/repos/{r.full_name}/contents/{child}",
                }
            )
        return 200, entries

    # --- JSON shapes -----------------------------------------------------------------------------
    def _api(self, r: Repo) -> str:
        return f"{self.url}/repos/{r.full_name}"

    def _user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": 1, "type": "User", "url": f"{self.url}/users/{login}"}

    def _repo_json(self, r: Repo) -> dict[str, Any]:
        owner, name = r.full_name.split("/")
        return {
            "id": 1,
            "name": name,
            "full_name": r.full_name,
            "owner": self._user(owner),
            "private": False,
            "default_branch": r.default_branch,
            "url": self._api(r),
        }

    def _issue_json(self, r: Repo, number: int) -> dict[str, Any]:
        item = r.items[number]
        data = {
            "id": item["id"],
            "number": number,
            "title": item["title"],
            "body": item["body"],
            "state": item["state"],
            "state_reason": item["state_reason"],
            "labels": [
                {"name": name, "color": "ededed", "url": f"{self._api(r)}/labels/{name}"} for name in item["labels"]
            ],
            "assignees": [self._user(a) for a in item["assignees"]],
            "assignee": self._user(item["assignees"][0]) if item["assignees"] else None,
            "user": self._user(item["user"]),
            "comments": len(r.comments[number]),
            "created_at": item["created_at"],
            "updated_at": item["updated_at"],
            "closed_at": item["closed_at"],
            "url": f"{self._api(r)}/issues/{number}",
            "html_url": f"https://github.example/{r.full_name}/issues/{number}",
            "repository_url": self._api(r),
        }
        if "pull" in item:
            data["pull_request"] = {"url": f"{self._api(r)}/pulls/{number}"}
        return data

    def _comment_json(self, r: Repo, number: int, c: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": c["id"],
            "body": c["body"],
            "user": self._user(c["user"]),
            "created_at": c["created_at"],
            "updated_at": c["created_at"],
            "url": f"{self._api(r)}/issues/comments/{c['id']}",
            "html_url": f"https://github.example/{r.full_name}/issues/{number}#issuecomment-{c['id']}",
        }

    def _pull_json(self, r: Repo, number: int) -> dict[str, Any]:
        item = r.items[number]
        pull = item["pull"]
        return {
            "id": item["id"],
            "number": number,
            "title": item["title"],
            "body": item["body"],
            "state": item["state"],
            "draft": pull.get("draft", False),
            "merged": pull.get("merged", False),
            "mergeable": pull.get("mergeable", True),
            "user": self._user(item["user"]),
            "head": {"ref": pull["head"], "sha": "a" * 40, "label": f"octo:{pull['head']}"},
            "base": {"ref": pull["base"], "sha": "b" * 40, "label": f"octo:{pull['base']}"},
            "additions": pull.get("additions", 0),
            "deletions": pull.get("deletions", 0),
            "changed_files": pull.get("changed_files", 0),
            "comments": len(r.comments[number]),
            "labels": [],
            "created_at": item["created_at"],
            "updated_at": item["updated_at"],
            "url": f"{self._api(r)}/pulls/{number}",
            "issue_url": f"{self._api(r)}/issues/{number}",
            "html_url": f"https://github.example/{r.full_name}/pull/{number}",
        }

    def _run_json(self, r: Repo, run_id: int) -> dict[str, Any]:
        run = r.runs[run_id]
        return {
            "id": run_id,
            "name": run["name"],
            "head_branch": run["head_branch"],
            "head_sha": "c" * 40,
            "event": "push",
            "status": run["status"],
            "conclusion": run["conclusion"],
            "run_number": run_id - 1000,
            "run_attempt": run["run_attempt"],
            "workflow_id": 7,
            "created_at": run["created_at"],
            "updated_at": run["created_at"],
            "url": f"{self._api(r)}/actions/runs/{run_id}",
            "html_url": f"https://github.example/{r.full_name}/actions/runs/{run_id}",
        }

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
