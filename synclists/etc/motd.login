 __  __ ___  ___
|  \/  / __|/ __|   MSC cluster login node
| |\/| \__ \ (__    Submit jobs with sbatch; do not run heavy work here.
|_|  |_|___/\___|   Scratch: /scratch   Project: /project   Docs: https://hpc.example.org

Problems: hpc-support@example.org
