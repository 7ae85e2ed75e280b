"""A notebook server's kernels and moves as a script sees them (the user's token, through the
proxy), and the small notebook whose state every move test carries: shared by the move and
private-traffic tests."""

from __future__ import annotations

import json

import requests

from .support import execute_in_kernel
from .testbed import wait_for

NOTEBOOK = [
    "import numpy as np\nimport pandas as pd\nimport os",
    "n = 42\nratio = 2.5\nd = {'a': [1, 2, {'b': 'c'}], 't': (1, 'x')}\na = [n, d]\nb = a",
    "arr = np.random.default_rng(7).random(10 * 1024 * 1024 // 8)",
    "df = pd.DataFrame({'x': range(1000), 'y': [str(i) for i in range(1000)]})",
    "square = lambda v: v * v\ndef plus_n(v):\n    return v + n",
    "class Greeter:\n    def __init__(self, who):\n        self.who = who\n    def greet(self):\n"
    "        return f'hello {self.who} at ' + os.environ.get('SLURM_CLUSTER_NAME', 'the server')",
    "g = Greeter('ada')",
]

DIGEST = """
import hashlib as _h, json as _j
print(_j.dumps({
    "n": n, "ratio": ratio, "d": repr(d), "same": b is a and a[1] is d,
    "arr": _h.sha256(arr.tobytes()).hexdigest(), "arr_dtype": str(arr.dtype),
    "df": _h.sha256(pd.util.hash_pandas_object(df).values.tobytes()).hexdigest(),
    "square": square(12), "plus_n": plus_n(1), "greeter": type(g).__name__, "is_greeter": isinstance(g, Greeter),
    "np": np.__name__, "pd": pd.__name__,
}, sort_keys=True))
"""


class Server:
    """The user's notebook server, reached through the proxy with the user's token."""

    def __init__(self, hub, user: str, token: str):
        self.hub, self.user, self.token = hub, user, token
        self.base = f"{hub.url}/user/{user}"
        self.headers = {"Authorization": f"token {token}"}

    def call(self, method: str, path: str, token: str | None = None, **kw):
        headers = {"Authorization": f"token {token}"} if token else self.headers
        return requests.request(method, f"{self.base}/{path}", headers=headers, timeout=120, **kw)

    def start_kernel(self, name: str) -> str:
        r = self.call("POST", "api/kernels", json={"name": name})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def run(self, kernel_id: str, code: str) -> dict:
        reply = execute_in_kernel(self.hub.url, self.user, self.token, kernel_id, code)
        assert reply["status"] == "ok", reply
        return reply

    def digest(self, kernel_id: str) -> dict:
        return json.loads(self.run(kernel_id, DIGEST)["stdout"])

    def where(self, kernel_id: str) -> str:
        return self.run(kernel_id, "print(g.greet())")["stdout"].strip()

    def move(self, kernel_id: str, **body) -> dict:
        r = self.call("POST", f"fedhub/api/kernels/{kernel_id}/move", json=body)
        assert r.status_code == 202, r.text
        return r.json()

    def follow(self, move: dict, until=("switched", "failed", "cancelled"), timeout: float = 180) -> dict:
        def state():
            m = self.call("GET", f"fedhub/api/moves/{move['id']}").json()
            return m if m["status"] in until or m["phase"] in until else None
        return wait_for(state, timeout, f"move {move['id']} to reach {until}", 0.3)

    def kernels(self) -> list[str]:
        return [k["id"] for k in self.call("GET", "api/kernels").json()]
