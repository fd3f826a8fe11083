# MSC site environment for sh-family shells.
export SCRATCH=/scratch/$USER
export PROJECT=/project
if [ -d /opt/site/modulefiles ]; then
    export MODULEPATH=/opt/site/modulefiles${MODULEPATH:+:$MODULEPATH}
fi
