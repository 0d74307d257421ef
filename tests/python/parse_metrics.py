"""Parse a Prometheus text exposition (stdin) with the Prometheus project's own Python parser
(prometheus_client.parser) and print every sample as one JSON object per line:
{"family", "type", "name", "labels", "value"}. Exits non-zero on text the parser rejects."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> None:
    text = sys.stdin.read()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            print(json.dumps({
                "family": family.name,
                "type": family.type,
                "name": sample.name,
                "labels": sample.labels,
                "value": sample.value,
            }))


if __name__ == "__main__":
    main()
