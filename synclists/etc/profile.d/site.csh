# MSC site environment for csh-family shells.
setenv SCRATCH /scratch/$USER
setenv PROJECT /project
if ( -d /opt/site/modulefiles ) then
    if ( $?MODULEPATH ) then
        setenv MODULEPATH /opt/site/modulefiles:$MODULEPATH
    else
        setenv MODULEPATH /opt/site/modulefiles
    endif
endif
