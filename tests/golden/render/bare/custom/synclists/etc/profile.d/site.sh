export SITE=golden
