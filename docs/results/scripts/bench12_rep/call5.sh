export PYTHONPATH=$PWD
timeout -s KILL 200 python .gpu/host_fwd.py > $OUT/host_fwd.log 2>&1; echo "rc $?" >> $OUT/host_fwd.log
grep -v Warn $OUT/host_fwd.log
