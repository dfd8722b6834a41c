"""A progress line for long loops: count, percentage, rate and time left, on stderr."""
import sys
import time


class Progress:
    """Call update(n) as work completes and close() at the end.

    On a terminal the line redraws in place a few times a second; in a log (CI, a pipe) it prints a
    line every tenth of the way, so logs stay short.
    """

    def __init__(self, total, label, unit="faces", stream=sys.stderr):
        self.total, self.label, self.unit, self.stream = total, label, unit, stream
        self.done = 0
        self.started = self.last_draw = time.perf_counter()
        self.interactive = stream.isatty()
        self.next_logged_tenth = 1

    def update(self, count=1):
        self.done += count
        now = time.perf_counter()
        if self.interactive and now - self.last_draw > 0.2:
            self.last_draw = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()
        elif not self.interactive and self.total and self.done * 10 >= self.next_logged_tenth * self.total:
            self.next_logged_tenth = self.done * 10 // self.total + 1
            self.stream.write(self.line(now) + "\n")

    def line(self, now):
        seconds = max(now - self.started, 1e-9)
        rate = self.done / seconds
        text = f"{self.label}: {self.done}/{self.total} {self.unit}"
        if self.total:
            text += f" ({100 * self.done / self.total:3.0f}%)"
        text += f", {rate:,.0f} {self.unit}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", {(self.total - self.done) / rate:.0f} s left"
        return text

    def close(self):
        if self.interactive:
            self.stream.write("\r" + self.line(time.perf_counter()) + "\n")
            self.stream.flush()
        return time.perf_counter() - self.started
