process SCDEAL_EXPLAIN {
    tag "${meta.id}:${meta.drug_key}"
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(adata, stageAs: '_inputs/adata/*'), path(cell_model, stageAs: '_inputs/model/*')

    output:
    tuple val(meta), path("${prefix}/signature_genes.tsv")                                     , emit: signature
    path("${prefix}/{cluster_signatures.tsv,attributions_top_genes.h5ad,explain_summary.json}"), emit: results
    path("${prefix}/*.png")                                                                    , emit: figures
    path("${prefix}/*_mqc.*")                                                                  , emit: mqc
    path("versions.yml")                                                                       , emit: versions, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    scdeal_explain.py \\
        --adata ${adata} \\
        --cell_model ${cell_model} \\
        --sample ${meta.id} \\
        --drug ${meta.drug_key} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        ${task.ext.flags} \\
        ${args}

    scdeal_versions.py "${task.process}" > versions.yml
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/signature_genes.tsv ${prefix}/cluster_signatures.tsv ${prefix}/attributions_top_genes.h5ad ${prefix}/explain_summary.json ${prefix}/${meta.id}_${meta.drug_key}_signature_heatmap.png ${prefix}/${meta.id}_${meta.drug_key}_signature_mqc.tsv
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
