"""Content shipped with tuiz: the sample quiz `make run` loads (`quiz-sample.json`)."""
