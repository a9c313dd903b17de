"""The PR comment: `pulumi preview --json` documents and engine event logs of several stacks,
rendered as one Markdown comment (``berth preview-comment``)."""
