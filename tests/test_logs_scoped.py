"""run.log belongs to one command or run: attached for it, removed after (no process-wide file handle)."""
import logging
from pathlib import Path

import pytest

from talkingface.cli import module_main
from talkingface.logs import log_to_file

SAMPLE = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking"


def _file_handlers():
    return [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)
            and getattr(h, "_talkingface", False)]


@pytest.fixture
def log():
    logger = logging.getLogger("talkingface.test_logs")
    logger.setLevel(logging.DEBUG)  # the commands set the root to DEBUG; here only this logger
    yield logger
    logger.setLevel(logging.NOTSET)


def test_the_file_handler_lives_for_the_block_only(tmp_path, log):
    before = list(logging.getLogger().handlers)
    with log_to_file(tmp_path / "a.log") as handler:
        assert handler in logging.getLogger().handlers
        log.info("inside a")
    log.warning("after a")
    assert logging.getLogger().handlers == before and handler.stream is None  # removed and closed
    with pytest.raises(RuntimeError):
        with log_to_file(tmp_path / "b.log"):
            log.info("inside b")
            raise RuntimeError("a command that fails")
    assert logging.getLogger().handlers == before
    assert "inside a" in (tmp_path / "a.log").read_text() and "after a" not in (tmp_path / "a.log").read_text()
    assert "inside b" in (tmp_path / "b.log").read_text()


def test_two_commands_in_one_process_keep_their_own_logs(tmp_path, log):
    import shutil

    refs = tmp_path / "refs"
    refs.mkdir()
    shutil.copy(SAMPLE / "astronaut_b.mp4", refs / "astronaut_a.mp4")  # another clip: PSNR cannot pair the frames
    runs = {tmp_path / "one": refs / "astronaut_a.mp4", tmp_path / "two": SAMPLE / "astronaut_a.mp4"}
    for run_dir, reference in runs.items():
        code = module_main(["evaluate", "--dataset=video-retalking", "--generated", str(SAMPLE / "astronaut_a.mp4"),
                            "--reference", str(reference), "--pairing=paired", "--metrics=psnr",
                            "--fidelity_crop=frame", "--plots=false", f"--run_dir={run_dir}"])
        assert code in (0, 3)
        assert _file_handlers() == []  # nothing left attached after the command
        log.warning("between commands, after %s", run_dir.name)
    first, second = ((run / "run.log").read_text() for run in runs)
    assert "PSNR skipped: frame-count mismatch" in first and "PSNR skipped" not in second
    assert "between commands" not in first and "between commands" not in second
