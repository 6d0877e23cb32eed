"""Execution and workflow ids: time-ordered, unique, and random where they must be, though
the random bytes are fetched from the operating system a page at a time."""

import os
import threading
import warnings

from hookflow_shared.ids import is_id, new_id


def test_ids_are_unique_and_well_formed_across_pages_of_random_bytes() -> None:
    ids = [new_id() for _ in range(5000)]  # 50 kB of random bytes: a dozen pages
    assert len(set(ids)) == len(ids)
    assert all(is_id(made) for made in ids)
    assert ids == sorted(ids, key=lambda made: made[:12]), "time-ordered by their prefix"
    assert len({made[12:] for made in ids}) == len(ids), "the random parts never repeat"


def test_ids_made_one_after_another_sort_in_that_order_even_in_one_millisecond() -> None:
    ids = [new_id() for _ in range(5000)]  # hundreds to a millisecond
    assert ids == sorted(ids)
    assert len({made[:12] for made in ids}) < len(ids), "several were made in one millisecond"


def test_ids_made_in_threads_at_once_never_repeat() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(into: list[str]) -> None:
        into.extend(new_id() for _ in range(2000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [made_id[12:] for into in made for made_id in into]
    assert len(set(every)) == len(every)


def test_a_forked_child_does_not_repeat_its_parents_random_bytes() -> None:
    new_id()  # the parent holds a page of random bytes now
    read, write = os.pipe()
    with warnings.catch_warnings():  # other tests' threads: the child only writes and exits
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    theirs = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(child, 0)
    ours = new_id()
    assert is_id(theirs)
    assert theirs[12:] != ours[12:]
