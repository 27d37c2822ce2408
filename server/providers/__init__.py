"""External services Parley talks to. `mturk`: MTurk's requester API through boto3."""
