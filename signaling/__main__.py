"""``python -m signaling`` behaves exactly like the ``stage-sfu`` console script."""

from signaling.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
