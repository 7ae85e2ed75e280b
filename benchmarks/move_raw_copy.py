"""Helper of kernel_move.py, run by the notebook environment's python (where fedhub_lab is):
copy SIZE bytes from one kernel to another over the mover's own channel (shell requests out of
the source, comm messages into the target, SHA-256 per piece), with no snapshot. Prints seconds.

    python move_raw_copy.py SOURCE_CONNECTION_FILE TARGET_CONNECTION_FILE SIZE
"""

import asyncio
import base64
import json
import sys
import time

from jupyter_client.manager import AsyncKernelManager

from fedhub_lab.moves.channel import KernelChannel


def manager(path: str) -> AsyncKernelManager:
    km = AsyncKernelManager(connection_file=path)
    km.load_connection_file()
    return km


async def main(source_file: str, target_file: str, size: int) -> float:
    source = KernelChannel(manager(source_file), "source", watch=False)
    target = KernelChannel(manager(target_file), "target", watch=False)
    try:
        started = time.perf_counter()
        manifest = await source.call_json(source.agent("pack_raw", "raw", size))
        answer = await target.call_json(target.agent("receive", "raw", json.dumps(manifest)))
        target.open_comm(answer["comm_target"])
        pieces = manifest["chunks"]
        asked = source.ask(source.agent("chunk", "raw", 0))
        for index in range(pieces):  # the mover's own loop: the next piece asked for before this one is read
            following = source.ask(source.agent("chunk", "raw", index + 1)) if index + 1 < pieces else ""
            sha, _, encoded = (await source.value(asked)).partition(":")
            asked = following
            target.send_piece(index, sha, base64.b64decode(encoded))
        got = await target.call_json(target.agent("received", "raw"))
        elapsed = time.perf_counter() - started
        assert got["pieces"] == manifest["chunks"] and not got["errors"], got
        for channel in (source, target):
            await channel.call(channel.agent("discard", "raw"))
        return elapsed
    finally:
        source.close()
        target.close()


if __name__ == "__main__":
    print(f"{asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))):.4f}")
