"""hello-python: STDIO protocol. Input: JSON {"name": "..."}, a JSON string,
or plain text. Output: one JSON line {"greeting": "Hello, NAME!"}."""

import json
import sys


def name_from(text):
    text = text.strip()
    if not text:
        return "world"
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        return data["name"]
    if isinstance(data, str):
        return data
    return "world"


def main():
    name = name_from(sys.stdin.read())
    json.dump({"greeting": "Hello, %s!" % name}, sys.stdout)
    sys.stdout.write("\n")


main()
