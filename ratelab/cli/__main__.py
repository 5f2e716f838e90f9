"""``python -m ratelab.cli``: the same as the ``ratelab`` console script."""

from ratelab.cli import main

if __name__ == "__main__":
    main()
